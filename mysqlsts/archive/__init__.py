"""The continuous binlog archive (issue 18): the archiver and its command."""

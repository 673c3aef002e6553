"""The local replica set: pods as processes on loopback, a supervisor as StatefulSet controller."""

"""`mysqlsts takeover`: moves a StatefulSet's pods off a node that is really down.

Layers: `model` and `decide` and `leader` are pure (plain values, `now` passed in); `kube` is the
only module that imports the `kubernetes` client; `controller` observes, decides, acts and
reports; `command` parses and wires. The sidecar and the clone never import this package.
"""

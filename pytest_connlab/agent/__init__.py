"""The connlab agent: stdlib-only programs run inside a lab host.

The controller starts it as ``python3 -m agent <role> ...`` inside a network
namespace, a container or an SSH host. Every role speaks JSON lines on stdout
(see :mod:`.proto`) and stops by itself: by count, by deadline, or when its
stdin closes because the controller went away.
"""

"""Playback of restricted broadcasts: grants, object signatures, the node's gate (docs/playback-auth.md).

``grants`` and ``rewrite`` are pure; ``access`` caches each broadcast's state and follows the bus;
``gate`` is what the origin, the API and the chat call; ``node`` wires it into the app.
"""

"""Runs a sipvicious tool with its sockets bound to a chosen source address.

sipvicious 0.3.3's svwar and svcrack accept -b but never pass it to their scanner classes, so they send
from whatever address the kernel picks. Attack tests must send from their own loopback address (so a
ban hits only the attacker): this wrapper rebinds the wildcard address before running the tool.

Usage: python3 bindwrap.py BIND_IP TOOL [ARGS...]
"""
import os
import runpy
import shutil
import socket
import sys

bind_ip, tool, args = sys.argv[1], sys.argv[2], sys.argv[3:]
original = socket.socket.bind


def bind(self, addr):
    if isinstance(addr, tuple) and addr[0] in ("", "0.0.0.0"):
        addr = (bind_ip,) + tuple(addr[1:])
    return original(self, addr)


socket.socket.bind = bind
path = os.path.realpath(shutil.which(tool))
# The entry script finds its package (and metadata) next to where it really lives.
sys.path.insert(0, os.path.dirname(path))
sys.argv = [tool] + args
runpy.run_path(path, run_name="__main__")

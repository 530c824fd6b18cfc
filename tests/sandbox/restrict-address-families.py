#!/usr/bin/python3
"""Runs a command under the socket() restriction a systemd unit's RestrictAddressFamilies= puts
on its service, as a seccomp filter (Debian's python3-seccomp: scripts/install-peers.sh seccomp).

Usage: restrict-address-families.py UNIT_FILE -- COMMAND [ARG]...

The allowed families are read from the unit, so that the test follows the unit. As systemd does,
socket() with any other family fails with EAFNOSUPPORT; everything else is allowed. Before running
the command it checks that the filter works: AF_NETLINK (when not allowed) must be refused.
Exit 125 when the unit or the filter is not usable, else the command's own exit status.
"""

import errno
import os
import socket
import sys

try:
    import seccomp
except ImportError:
    print("restrict-address-families: python3 module seccomp missing (Debian's python3-seccomp: "
          "scripts/install-peers.sh seccomp)", file=sys.stderr)
    sys.exit(125)

# Linux has fewer than 64 address families (AF_MAX is 46 in 6.x); anything above is refused too.
FAMILY_LIMIT = 64


def allowed_families(unit_path):
    """The families of the unit's RestrictAddressFamilies= lines (an allow-list)."""
    allowed = set()
    seen = False
    with open(unit_path, encoding="utf-8") as unit:
        for line in unit:
            line = line.strip()
            if not line.startswith("RestrictAddressFamilies="):
                continue
            seen = True
            value = line.split("=", 1)[1].split()
            if not value or value[0].startswith("~") or value == ["none"]:
                # A deny-list or "none" would need other rules: say so rather than test less.
                print(f"restrict-address-families: {unit_path}: {line!r} is not an allow-list",
                      file=sys.stderr)
                sys.exit(125)
            for name in value:
                family = getattr(socket, name, None)
                if not isinstance(family, int):
                    print(f"restrict-address-families: {unit_path}: unknown family {name}",
                          file=sys.stderr)
                    sys.exit(125)
                allowed.add(int(family))
    if not seen:
        print(f"restrict-address-families: {unit_path} has no RestrictAddressFamilies=",
              file=sys.stderr)
        sys.exit(125)
    return allowed


def main():
    if len(sys.argv) < 4 or sys.argv[2] != "--":
        print(__doc__, file=sys.stderr)
        sys.exit(125)
    unit_path, command = sys.argv[1], sys.argv[3:]
    allowed = allowed_families(unit_path)
    sandbox = seccomp.SyscallFilter(defaction=seccomp.ALLOW)
    refuse = seccomp.ERRNO(errno.EAFNOSUPPORT)
    for family in range(FAMILY_LIMIT):
        if family not in allowed:
            sandbox.add_rule(refuse, "socket", seccomp.Arg(0, seccomp.EQ, family))
    sandbox.add_rule(refuse, "socket", seccomp.Arg(0, seccomp.GE, FAMILY_LIMIT))
    sandbox.load()
    if socket.AF_NETLINK not in allowed:
        try:
            socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0).close()
            print("restrict-address-families: the filter let an AF_NETLINK socket through",
                  file=sys.stderr)
            sys.exit(125)
        except OSError as e:
            if e.errno != errno.EAFNOSUPPORT:
                raise
    os.execvp(command[0], command)


main()

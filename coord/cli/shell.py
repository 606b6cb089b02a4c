"""``coord shell``: an interactive shell on a running cluster, in the
spirit of ZooKeeper's ``zkCli.sh``.

It joins the cluster as an observer (a full local replica that never votes)
with the cluster secret, so reads are local and every write goes through
the leader like any member's. Commands: ``ls``, ``tree``, ``get``,
``stat``, ``create``, ``set``, ``delete``, ``watch``/``unwatch``, ``lock``,
``sync``, ``help``, ``quit``. History is kept in ``~/.coord_history`` (or
``--history-file``); Tab completes commands and znode paths. Errors print
one line, never a traceback. With words after the options it runs that one
command and exits (``coord shell --peers ... ls /``).
"""

from __future__ import annotations

import argparse
import cmd
import contextlib
import datetime
import os
import shlex
import sys
import threading
from collections.abc import Callable, Mapping
from typing import IO, Any, NoReturn

from coord import errors

from ._common import add_cluster_arguments, connect, error, one_line

HISTORY_ENV_VAR = "COORD_HISTORY_FILE"
DEFAULT_HISTORY = "~/.coord_history"
TREE_LIMIT = 10_000


def add_parser(sub: Any) -> None:
    """The ``shell`` subcommand's arguments."""
    parser = sub.add_parser(
        "shell",
        help="interactive shell: ls, tree, get, set, create, delete, watch, lock, ...",
        description="An interactive shell on a running cluster; joins it as an observer.",
    )
    add_cluster_arguments(parser)
    parser.add_argument(
        "--name", default=None, help="this observer's name, host:port (default: this host and a random port)"
    )
    parser.add_argument(
        "--history-file", default=None, help=f"readline history file (default: ${HISTORY_ENV_VAR} or {DEFAULT_HISTORY})"
    )
    parser.add_argument("words", nargs=argparse.REMAINDER, help="run this one command and exit")
    parser.set_defaults(handler=main, default_log_level="ERROR")


class ShellUsageError(Exception):
    """A command was called with bad arguments (its usage is printed)."""


class _ArgParser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise ShellUsageError(f"{message}\nusage: {self.format_usage().strip().removeprefix('usage: ')}")

    def exit(self, status: int = 0, message: str | None = None) -> NoReturn:
        raise ShellUsageError(message or "")


def _command_parser(prog: str, *arguments: tuple[tuple[str, ...], dict[str, Any]]) -> _ArgParser:
    parser = _ArgParser(prog=prog, add_help=False)
    for names, options in arguments:
        parser.add_argument(*names, **options)
    return parser


_PARSERS = {
    "ls": _command_parser("ls", (("path",), {"nargs": "?", "default": "/"})),
    "tree": _command_parser("tree", (("path",), {"nargs": "?", "default": "/"})),
    "get": _command_parser("get", (("path",), {})),
    "stat": _command_parser("stat", (("path",), {})),
    "create": _command_parser(
        "create",
        (("-e", "--ephemeral"), {"action": "store_true", "help": "ephemeral: goes when this shell exits"}),
        (("-s", "--sequence"), {"action": "store_true", "help": "sequential: a counter is appended"}),
        (("-c", "--container"), {"action": "store_true", "help": "container node"}),
        (("-p", "--parents"), {"action": "store_true", "help": "create missing parents"}),
        (("-t", "--ttl"), {"type": int, "default": None, "help": "TTL in ms"}),
        (("path",), {}),
        (("data",), {"nargs": "?", "default": ""}),
    ),
    "set": _command_parser(
        "set", (("-v", "--version"), {"type": int, "default": -1}), (("path",), {}), (("data",), {})
    ),
    "delete": _command_parser(
        "delete",
        (("-r", "--recursive"), {"action": "store_true"}),
        (("-v", "--version"), {"type": int, "default": -1}),
        (("path",), {}),
    ),
    "watch": _command_parser("watch", (("-r", "--recursive"), {"action": "store_true"}), (("path",), {})),
    "unwatch": _command_parser("unwatch", (("path",), {})),
    "lock": _command_parser(
        "lock",
        (("action",), {"choices": ["acquire", "release", "list"]}),
        (("path",), {"nargs": "?"}),
        (("timeout",), {"nargs": "?", "type": float, "default": 10.0}),
    ),
    "sync": _command_parser("sync", (("path",), {"nargs": "?", "default": "/"})),
}


def format_value(value: bytes | None) -> str:
    """A znode value for display: the text if it is printable UTF-8, else
    the bytes' Python repr (ZooKeeper's null data, through kazoo: empty)."""
    if value is None:
        return ""
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError:
        return repr(value)
    return text if text.isprintable() or not text else repr(value)


def _time(ms: int) -> str:
    return datetime.datetime.fromtimestamp(ms / 1000, datetime.UTC).isoformat(timespec="milliseconds")


def format_stat(stat: Any) -> str:
    """A Stat laid out as zkCli's ``stat`` prints it."""
    return "\n".join(
        [
            f"cZxid = 0x{stat.czxid:x}",
            f"ctime = {_time(stat.ctime)}",
            f"mZxid = 0x{stat.mzxid:x}",
            f"mtime = {_time(stat.mtime)}",
            f"pZxid = 0x{stat.pzxid:x}",
            f"cversion = {stat.cversion}",
            f"dataVersion = {stat.version}",
            f"aclVersion = {stat.aversion}",
            f"ephemeralOwner = 0x{stat.ephemeralOwner:x}",
            f"dataLength = {stat.dataLength}",
            f"numChildren = {stat.numChildren}",
        ]
    )


def _join(parent: str, child: str) -> str:
    return f"{parent.rstrip('/')}/{child}"


class CoordShell(cmd.Cmd):
    """The shell's commands over a kazoo-shaped client (a started
    ``Coordinator``). Output goes to ``stdout``; watch events are printed
    as they arrive, from the member's callback threads."""

    intro = 'coord shell: "help" lists the commands, Tab completes them and znode paths, "quit" leaves.'
    doc_header = "commands (help COMMAND for details):"

    def __init__(
        self, client: Any, *, stdout: IO[str] | None = None, history_file: str | None = None, prompt: str = "coord> "
    ) -> None:
        super().__init__(stdout=stdout or sys.stdout)
        self.client = client
        self.prompt = prompt
        self.history_file = history_file
        self.failed = False
        self._print_lock = threading.Lock()
        self._watches: dict[str, Callable[[Any], None]] = {}
        self._locks: dict[str, Any] = {}
        self._readline: Any = None

    # ------------------------------------------------------------------ plumbing

    def say(self, text: str) -> None:
        """Print one line (thread-safe)."""
        with self._print_lock:
            self.stdout.write(text + "\n")
            self.stdout.flush()

    def _async_say(self, text: str) -> None:
        """Print from another thread without losing the line being typed."""
        with self._print_lock:
            buffer = ""
            if self._readline is not None:
                buffer = self._readline.get_line_buffer()
                self.stdout.write("\r\x1b[K")
            self.stdout.write(text + "\n")
            if self._readline is not None:
                self.stdout.write(self.prompt + buffer)
            self.stdout.flush()

    def preloop(self) -> None:
        """Load the history and set up completion of paths."""
        if not self.use_rawinput:
            return
        try:
            import readline
        except ImportError:  # no readline on this platform: no history, no completion
            return
        self._readline = readline
        readline.set_completer_delims(" \t\n")
        if self.history_file:
            readline.set_history_length(1000)
            with contextlib.suppress(OSError):
                readline.read_history_file(self.history_file)

    def postloop(self) -> None:
        """Save the history."""
        if self._readline is not None and self.history_file:
            try:
                self._readline.write_history_file(self.history_file)
            except OSError as exc:
                error(f"cannot write history file {self.history_file}: {exc.strerror}")

    def cmdloop(self, intro: Any = None) -> None:
        """Read and run commands until ``quit`` or EOF; Ctrl-C cancels the line."""
        while True:
            try:
                super().cmdloop(intro)
                return
            except KeyboardInterrupt:
                self.stdout.write("^C\n")
                intro = ""

    def onecmd(self, line: str) -> bool:
        """Run one command line; errors become one printed line."""
        self.failed = False
        try:
            return bool(super().onecmd(line))
        except ShellUsageError as exc:
            self.failed = True
            self.say(f"Error: {exc}")
        except (errors.CoordError, ValueError, TypeError, OSError) as exc:
            self.failed = True
            self.say(f"Error: {one_line(exc)}")
        except Exception as exc:  # noqa: BLE001 - a shell never dies of one command
            self.failed = True
            self.say(f"Error: {one_line(exc)}")
        return False

    def get_names(self) -> list[str]:
        """Command method names, without ``do_EOF`` (Ctrl-D is not a command to list)."""
        return [name for name in super().get_names() if name != "do_EOF"]

    def emptyline(self) -> bool:
        """An empty line does nothing (cmd's default repeats the last command)."""
        return False

    def default(self, line: str) -> None:
        """An unknown command."""
        self.failed = True
        self.say(f"Error: unknown command {line.split()[0]!r}; try help")

    def _args(self, name: str, arg: str) -> argparse.Namespace:
        try:
            words = shlex.split(arg)
        except ValueError as exc:
            raise ShellUsageError(str(exc)) from None
        return _PARSERS[name].parse_args(words)

    # ------------------------------------------------------------------ completion

    def complete_path(self, text: str) -> list[str]:
        """Znode paths that start with ``text`` (from the local replica)."""
        if not text:
            return ["/"]
        if not text.startswith("/"):
            return []
        parent, _, prefix = text.rpartition("/")
        try:
            children = self.client.get_children(parent or "/")
        except Exception:  # noqa: BLE001 - completion never fails loudly
            return []
        return [_join(parent or "/", child) for child in children if child.startswith(prefix)]

    def completedefault(self, text: str, line: str, begidx: int, endidx: int) -> list[str]:
        """Complete znode paths for every command (and lock's actions)."""
        words = line[:begidx].split()
        if words and words[0] == "lock" and len(words) == 1:
            return [a for a in ("acquire", "release", "list") if a.startswith(text)]
        return self.complete_path(text)

    # ------------------------------------------------------------------ commands

    def do_ls(self, arg: str) -> None:
        """ls [PATH]: the children of PATH (default /), sorted."""
        args = self._args("ls", arg)
        children = self.client.get_children(args.path)
        self.say("  ".join(children) if children else "(no children)")

    def do_tree(self, arg: str) -> None:
        """tree [PATH]: PATH and every node below it, indented."""
        args = self._args("tree", arg)
        if self.client.exists(args.path) is None:
            raise errors.NoNodeError(args.path)
        shown = 0
        stack: list[tuple[str, int]] = [(args.path, 0)]
        while stack:
            path, depth = stack.pop()
            name = path if depth == 0 else path.rsplit("/", 1)[1]
            self.say("  " * depth + name)
            shown += 1
            if shown >= TREE_LIMIT:
                self.say(f"... (stopped after {TREE_LIMIT} nodes)")
                return
            try:
                children = self.client.get_children(path)
            except errors.NoNodeError:
                continue
            stack.extend((_join(path, child), depth + 1) for child in reversed(children))

    def do_get(self, arg: str) -> None:
        """get PATH: the value of PATH (text, or a bytes repr if binary)."""
        args = self._args("get", arg)
        value, _ = self.client.get(args.path)
        self.say(format_value(value))

    def do_stat(self, arg: str) -> None:
        """stat PATH: the Stat of PATH."""
        args = self._args("stat", arg)
        stat = self.client.exists(args.path)
        if stat is None:
            raise errors.NoNodeError(args.path)
        self.say(format_stat(stat))

    def do_create(self, arg: str) -> None:
        """create [-e] [-s] [-c] [-p] [-t TTL_MS] PATH [DATA]: create a node
        (-e ephemeral, -s sequential, -c container, -p make parents)."""
        args = self._args("create", arg)
        kwargs: dict[str, Any] = {"ephemeral": args.ephemeral, "sequence": args.sequence, "makepath": args.parents}
        if args.container:
            kwargs["container"] = True
        if args.ttl is not None:
            kwargs["ttl"] = args.ttl
        created = self.client.create(args.path, args.data.encode("utf-8"), **kwargs)
        self.say(f"Created {created}")

    def do_set(self, arg: str) -> None:
        """set [-v VERSION] PATH DATA: set the value (compare-and-set with -v)."""
        args = self._args("set", arg)
        stat = self.client.set(args.path, args.data.encode("utf-8"), version=args.version)
        self.say(f"Set {args.path} (version {stat.version})")

    def do_delete(self, arg: str) -> None:
        """delete [-r] [-v VERSION] PATH: delete a node (-r: and everything below it)."""
        args = self._args("delete", arg)
        self.client.delete(args.path, version=args.version, recursive=args.recursive)
        self.say(f"Deleted {args.path}")

    def do_watch(self, arg: str) -> None:
        """watch [-r] PATH: print every change of PATH as it happens (-r: and
        of every node below it) until unwatch PATH."""
        args = self._args("watch", arg)
        if args.path in self._watches:
            raise ShellUsageError(f"already watching {args.path}")

        def on_event(event: Any) -> None:
            kind = getattr(event.type, "name", event.type)
            self._async_say(f"WATCH {kind} {event.path}")

        self.client.add_watch(args.path, on_event, recursive=args.recursive)
        self._watches[args.path] = on_event
        self.say(f"Watching {args.path}{' and below' if args.recursive else ''}")

    def do_unwatch(self, arg: str) -> None:
        """unwatch PATH: stop a watch set with watch."""
        args = self._args("unwatch", arg)
        func = self._watches.pop(args.path, None)
        if func is None:
            raise ShellUsageError(f"not watching {args.path}")
        self.client.remove_watch(args.path, func)
        self.say(f"Stopped watching {args.path}")

    def do_lock(self, arg: str) -> None:
        """lock acquire PATH [TIMEOUT] | lock release PATH | lock list: take or
        give back a lock (the Lock recipe on PATH; shows its fencing token)."""
        args = self._args("lock", arg)
        if args.action == "list":
            for path, lock in sorted(self._locks.items()):
                self.say(f"{path} (fencing token {lock.fencing_token})")
            if not self._locks:
                self.say("(no locks held)")
            return
        if args.path is None:
            raise ShellUsageError(f"lock {args.action} needs a PATH")
        if args.action == "acquire":
            if args.path in self._locks:
                raise ShellUsageError(f"already holding {args.path}")
            lock = self.client.Lock(args.path, identifier=f"coord-shell {os.getpid()}")
            if not lock.acquire(timeout=args.timeout):
                self.failed = True
                self.say(f"Not acquired {args.path} within {args.timeout:g}s (held by {lock.contenders()[:1]})")
                return
            self._locks[args.path] = lock
            self.say(f"Acquired {args.path} (fencing token {lock.fencing_token})")
            return
        held = self._locks.pop(args.path, None)
        if held is None:
            raise ShellUsageError(f"not holding {args.path}")
        held.release()
        self.say(f"Released {args.path}")

    def do_sync(self, arg: str) -> None:
        """sync [PATH]: make every write committed before now visible here."""
        args = self._args("sync", arg)
        self.client.sync(args.path)
        self.say(f"Synced {args.path}")

    def do_quit(self, arg: str) -> bool:
        """quit: leave the shell (its ephemerals and locks go)."""
        return True

    do_exit = do_quit

    def do_EOF(self, arg: str) -> bool:  # noqa: N802 - cmd's name for end of input
        """Ctrl-D: leave the shell."""
        self.stdout.write("\n")
        return True

    def close(self) -> None:
        """Release held locks and end watches (best effort)."""
        for lock in self._locks.values():
            with contextlib.suppress(Exception):  # leaving anyway; the session close frees them too
                lock.release()
        self._locks.clear()


def main(args: argparse.Namespace, environ: Mapping[str, str] | None = None) -> int:
    """Join as an observer, then run the shell (or one command); 0 on
    success, 1 if the (one-shot) command failed or the cluster was not
    reachable."""
    environ = os.environ if environ is None else environ
    try:
        client = connect(args, environ)
    except (errors.CoordError, ValueError) as exc:
        error(f"cannot join the cluster: {one_line(exc)}")
        return 1
    try:
        if args.words:
            words = args.words[1:] if args.words[0] == "--" else args.words
            shell = CoordShell(client)
            shell.onecmd(shlex.join(words))
            return 1 if shell.failed else 0
        history = args.history_file or environ.get(HISTORY_ENV_VAR) or os.path.expanduser(DEFAULT_HISTORY)
        interactive = sys.stdin.isatty()
        shell = CoordShell(
            client, history_file=history if interactive else None, prompt="coord> " if interactive else ""
        )
        shell.use_rawinput = True
        shell.cmdloop(shell.intro if interactive else "")
        shell.close()
        return 0
    finally:
        client.stop()

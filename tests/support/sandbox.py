"""The installed service in a bubblewrap sandbox shaped like the production container (D1).

There is no Docker engine on the CI machines, so the container's properties are reproduced with
bubblewrap: a fresh, read-only root holding only /usr, /etc, the Python interpreter, the
third-party packages and the non-editable timedify install (at /opt/timedify); /app/tmp the only
writable bind; a non-root uid. As root (CI) bwrap sets the mounts up and `setpriv` drops to the
image's uid with no capabilities; as a normal user bwrap maps that uid in a user namespace.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

INSTALL_DIR = "/opt/timedify"


def bwrap() -> str:
    path = shutil.which("bwrap")
    if path is None:
        raise RuntimeError("bubblewrap is missing: run scripts/ensure-bubblewrap (apt bubblewrap)")
    return path


def install_package(source_root: Path, work: Path) -> Path:
    """Build and install timedify non-editable into a fresh directory, byte-compiled.

    The sources are copied first so the build writes nothing into the worktree; no network:
    setuptools comes from the dev environment (--no-build-isolation).
    """
    build = work / "build-src"
    build.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(source_root / name, build / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    shutil.copytree(source_root / "src", build / "src", ignore=ignore)
    site = work / "site"
    pip = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    opts = ["--no-deps", "--no-build-isolation", "--no-index", "--no-cache-dir", "--target"]
    subprocess.run([*pip, *opts, str(site), str(build)], check=True, timeout=180, cwd=work)
    # What the image does at build time: the read-only runtime cannot write __pycache__.
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(site)], check=True, timeout=120)
    return site


@dataclass
class Sandbox:
    """argv builder: `command(...)` runs inside the container-shaped sandbox."""

    site: Path  # host directory bound read-only at /opt/timedify
    tmp: Path  # host directory bound read-write at the image's VOLUME
    volume: str  # e.g. /app/tmp
    uid: int
    gid: int
    env: dict[str, str]

    def prepare_tmp(self) -> None:
        """The volume belongs to the image's user, as `chown` in the Dockerfile makes it."""
        self.tmp.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            os.chown(self.tmp, self.uid, self.gid)
        self.tmp.chmod(0o700)

    def command(self, *argv: str, workdir: str = "/app") -> list[str]:
        return [bwrap(), *self._mounts(workdir), *self._identity_and_env(), "--", *argv]

    def _mounts(self, workdir: str) -> list[str]:
        args = ["--ro-bind", "/usr", "/usr", "--ro-bind", "/etc", "/etc"]
        for link in ("bin", "sbin", "lib", "lib64", "lib32"):
            target = Path("/", link)
            if target.is_symlink():
                args += ["--symlink", os.readlink(target), f"/{link}"]
            elif target.is_dir():
                args += ["--ro-bind", str(target), f"/{link}"]
        interpreter = {Path(sys.base_prefix).resolve(), Path(sys.prefix).resolve()}
        binds = [(str(p), str(p)) for p in sorted(interpreter) if not _under(p, "/usr")]
        binds.append((str(self.site), INSTALL_DIR))
        # /tmp exists but is read-only, as under `docker run --read-only`.
        sandbox_tmp = "/tmp"  # noqa: S108 (a path inside the sandbox, read-only there)
        for directory in _directories([d for _, d in binds] + [self.volume], workdir, sandbox_tmp):
            args += ["--perms", "0755", "--dir", directory]
        for source, dest in binds:
            args += ["--ro-bind", source, dest]
        args += ["--bind", str(self.tmp), self.volume, "--dev", "/dev", "--proc", "/proc"]
        # The root itself (a tmpfs bwrap made) turns read-only: only the volume stays writable.
        args += ["--remount-ro", "/", "--chdir", workdir]
        return args

    def _identity_and_env(self) -> list[str]:
        args = ["--unshare-pid", "--unshare-ipc", "--unshare-uts", "--new-session"]
        args += ["--die-with-parent", "--clearenv"]
        for key, value in self.env.items():
            args += ["--setenv", key, value]
        if os.geteuid() != 0:
            return [*args, "--unshare-user", "--uid", str(self.uid), "--gid", str(self.gid)]
        drop = ["setpriv", f"--reuid={self.uid}", f"--regid={self.gid}", "--clear-groups"]
        drop += ["--inh-caps=-all", "--bounding-set=-all", "--no-new-privs"]
        return [*args, "--", *drop]


def _under(path: Path, root: str) -> bool:
    return path == Path(root) or Path(root) in path.parents


def _directories(targets: list[str], *extra: str) -> list[str]:
    """The directories above the bind targets plus `extra`, shallowest first.

    Created explicitly with `--perms 0755`: those bwrap creates implicitly are 0700 when it
    runs as root, and the dropped uid could not enter them.
    """
    found = {str(p) for target in targets for p in Path(target).parents if str(p) != "/"}
    found.update(extra)
    return sorted(found, key=lambda p: (p.count("/"), p))

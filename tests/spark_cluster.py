"""A real Spark standalone cluster on loopback for tests: one master and one or more workers, from the pip
package alone, and the project zip (`make pyfiles`) its executors import.

The daemons are plain JVMs started with `spark-class` (the pip package has no sbin/start-*.sh), bound to
127.0.0.1, logging into a temporary directory, and stopped by PID.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SPARK_CLASS = Path(sys.executable).parent / "spark-class"
READY_TIMEOUT = 90.0


def build_pyfiles(dest: Path) -> Path:
    """`make pyfiles` with this interpreter, copied out at once so a concurrent build cannot change it."""
    subprocess.run(["make", "-s", "-C", str(REPO), "pyfiles", f"PYTHON={sys.executable}"], check=True,
                   capture_output=True, text=True)
    zip_path = dest / "corpusforge.zip"
    shutil.copyfile(REPO / "build" / "corpusforge.zip", zip_path)
    return zip_path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(log_dir: Path) -> dict:
    env = dict(os.environ, SPARK_LOCAL_IP="127.0.0.1", SPARK_LOG_DIR=str(log_dir))
    env["PATH"] = f"{SPARK_CLASS.parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def _tail(path: Path, lines: int = 40) -> str:
    text = path.read_text(errors="replace") if path.exists() else "(no log)"
    return "\n".join(text.splitlines()[-lines:])


def _start(name: str, args: list[str], log_dir: Path, ready: str) -> subprocess.Popen:
    """Start one daemon with its output in LOG_DIR/NAME.log and wait for its readiness line."""
    log = log_dir / f"{name}.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([str(SPARK_CLASS), *args], stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, env=_env(log_dir), start_new_session=True)
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if ready in log.read_text(errors="replace"):
            return proc
        if proc.poll() is not None:
            break
        time.sleep(0.5)
    _stop(proc)
    state = f"exited with {proc.returncode}" if proc.returncode is not None else f"not ready after {READY_TIMEOUT:.0f} s"
    raise RuntimeError(f"Spark {name} {state} (waiting for {ready!r}); log tail:\n{_tail(log)}")


def _stop(proc: subprocess.Popen, grace: float = 15.0) -> None:
    """SIGTERM the daemon's process group (spark-class execs java in it), then SIGKILL if it lingers."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


@dataclass(frozen=True)
class Cluster:
    url: str  # spark://127.0.0.1:PORT
    worker_pids: tuple[int, ...]
    work_dirs: tuple[Path, ...]  # each worker's --work-dir: WORK/APP_ID/EXECUTOR_ID/stderr is an executor's log

    def executor_pids(self) -> list[int]:
        """PIDs of the executor JVMs (CoarseGrainedExecutorBackend) this cluster's workers have launched."""
        pids = []
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit():
                continue
            try:
                ppid = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
                cmdline = (proc / "cmdline").read_bytes()
            except (OSError, IndexError, ValueError):  # the process exited while we looked
                continue
            if ppid in self.worker_pids and b"CoarseGrainedExecutorBackend" in cmdline:
                pids.append(int(proc.name))
        return sorted(pids)

    def tasks_run(self, app_index: int) -> list[int]:
        """Per worker, the tasks its executors ran for the app_index-th application submitted (0-based; the
        master numbers application ids in submission order), counted from the executors' own logs."""
        counts = []
        for work in self.work_dirs:
            apps = sorted(work.glob("app-*"), key=lambda d: d.name.rsplit("-", 1)[1])
            app = next((d for d in apps if int(d.name.rsplit("-", 1)[1]) == app_index), None)
            logs = app.glob("*/stderr") if app else []
            counts.append(sum(log.read_text(errors="replace").count("Running task ") for log in logs))
        return counts


@contextlib.contextmanager
def running_cluster(cores: int = 2, memory: str = "2g", log_dir: Path | None = None, workers: int = 1):
    """Yield a Cluster: a running master with `workers` registered workers of `cores` cores each."""
    with tempfile.TemporaryDirectory(prefix="spark-cluster-") as tmp, contextlib.ExitStack() as stack:
        logs = Path(log_dir or Path(tmp) / "logs")
        logs.mkdir(parents=True, exist_ok=True)
        port = free_port()
        url = f"spark://127.0.0.1:{port}"
        master = _start("master", ["org.apache.spark.deploy.master.Master", "--host", "127.0.0.1",
                                   "--port", str(port), "--webui-port", str(free_port())],
                        logs, "I have been elected leader")
        stack.callback(_stop, master)
        pids, work_dirs = [], []
        for i in range(workers):
            work = Path(tmp) / f"work-{i}"
            work.mkdir()
            worker = _start(f"worker-{i}", ["org.apache.spark.deploy.worker.Worker", "--host", "127.0.0.1",
                                            "--webui-port", str(free_port()), "--cores", str(cores),
                                            "--memory", memory, "--work-dir", str(work), url],
                            logs, "Successfully registered with master")
            stack.callback(_stop, worker)  # stopped before the master, in reverse order
            pids.append(worker.pid)
            work_dirs.append(work)
        yield Cluster(url, tuple(pids), tuple(work_dirs))


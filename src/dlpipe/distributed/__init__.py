"""Start a training on several processes with torch's elastic launcher (what torchrun runs).

``dlpipe train ... --nproc N`` calls :func:`launch`, which starts N copies of
``python -m dlpipe train ...`` (without ``--nproc``) as ranks of one job on this machine. Each rank
finds RANK/WORLD_SIZE/MASTER_ADDR/MASTER_PORT in its environment and joins the process group
(``dlpipe.core.distributed``). Several machines: run ``torchrun ... -m dlpipe train ...`` yourself.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
import uuid
import warnings
from collections.abc import Sequence

from dlpipe.core.errors import DlpipeWarning, InvalidConfigError, RunFailedError

__all__ = ["launch", "DEFAULT_MASTER_PORT"]

DEFAULT_MASTER_PORT = 29500


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def launch(args: Sequence[str], nproc: int, master_port: int = DEFAULT_MASTER_PORT) -> int:
    """Run ``python -m dlpipe <args>`` as ``nproc`` ranks; return 0 or raise a one-sentence error."""
    if nproc < 1:
        raise InvalidConfigError(f"`nproc` is {nproc} but must be at least 1.")
    cores = os.cpu_count() or 1
    if nproc > cores:
        warnings.warn(
            DlpipeWarning(
                f"`nproc` is {nproc}, more than this machine's {cores} CPU cores; the ranks will share cores and run slower."
            ),
            stacklevel=2,
        )
    if not _port_free(master_port):
        raise InvalidConfigError(
            f"port {master_port} on 127.0.0.1 is already in use (another job?); pass a free one as `master_port`, e.g. {master_port + 1}."
        )
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    # The elastic agent logs every worker exit at ERROR level; the one sentence below says it better.
    for name in list(logging.root.manager.loggerDict):
        if name.startswith("torch.distributed.elastic"):
            logging.getLogger(name).setLevel(logging.CRITICAL)
    config = LaunchConfig(
        min_nodes=1,
        max_nodes=1,
        nproc_per_node=nproc,
        run_id=uuid.uuid4().hex[:8],
        rdzv_backend="static",
        rdzv_endpoint=f"127.0.0.1:{master_port}",
        rdzv_configs={"rank": 0, "timeout": 60},
        max_restarts=0,
        monitor_interval=0.2,
        start_method="spawn",
    )
    try:
        elastic_launch(config, entrypoint=sys.executable)("-m", "dlpipe", *args)
    except ChildFailedError as exc:
        rank, failure = (
            exc.get_first_failure()
        )  # the root cause; later ones were stopped by the agent
        how = (
            f"was killed by signal {failure.signal_name()}"
            if failure.exitcode < 0
            else f"exited with code {failure.exitcode}"
        )
        raise RunFailedError(
            f"rank {rank} of {nproc} {how}, so the other ranks were stopped and no bundle was written; see the messages above, fix the cause and rerun."
        ) from None
    return 0

"""Scipion ``hosts.conf`` for this plugin: the ONE place that writes it.

Two flavours, both a ``[localhost]`` section:

* ``localhost`` -- no queue (what ``make envs`` and the test set-up write);
* ``slurm``     -- Scipion's queue on Slurm: queues ``<partition>`` (CPU only) and
  ``<partition>-gpu`` (``--gres=gpu:N``, N = the length of the protocol's GPU list),
  ``--export=ALL`` so the job sees the Scipion variables of the submitting process,
  and the engine environment put first on PATH *inside the job script* by its absolute
  prefix (no reliance on the submitting shell).  Paths are shell-quoted, so folders
  with spaces work; job logs go to ``<run>/logs/<job>.out|.err``.

This module imports nothing from pyworkflow (the repo-root conftest and the Makefile run
it before Scipion is configured):

    python scnet_plugin/hosts.py localhost -o ~/.config/scipion/hosts.conf
    python scnet_plugin/hosts.py slurm --engine-home /opt/scnet-engine --partition gpu -o hosts.conf
"""
import argparse
import json
import os
import shlex
import sys

LOCALHOST = "localhost"
SLURM = "slurm"
KINDS = (LOCALHOST, SLURM)
GPU_SUFFIX = "-gpu"

# pyworkflow reads hosts.conf raw and turns "%_(" into "%(" (Python %-formatting with the
# submit dictionary); a literal % must be written %%.
_PARALLEL = "mpirun -np %_(JOB_NODES)d --map-by node %_(COMMAND)s"


def _esc(text: str) -> str:
    """A literal for a hosts.conf value: % doubled, since pyworkflow %-formats the template."""
    return text.replace("%", "%%")


def _indent(block: str) -> str:
    """Continuation lines of a configparser value (leading blank), '#' lines written '##'."""
    out = []
    for line in block.splitlines():
        out.append("\t" + ("#" + line if line.startswith("#") else line))
    return "\n".join(out)


def _template_entry(script: str) -> str:
    """``SUBMIT_TEMPLATE = <first line>`` + continuation lines: the script must start with #!."""
    first, _, rest = script.partition("\n")
    return f"SUBMIT_TEMPLATE = {first}\n" + _indent(rest) + "\n"


def localhost_conf() -> str:
    return ("[localhost]\n"
            f"PARALLEL_COMMAND = {_PARALLEL}\n"
            "NAME = SCIPION_LOCALHOST\n"
            "ADDRESS = localhost\n"
            "MANDATORY = False\n"
            "QUEUE_SYSTEM = False\n")


def _queue_params(gpu: bool, memory: str, time: str):
    """QUEUES entries: [KEY, default, label, help] as pyworkflow's queue form shows them."""
    params = [["JOB_MEMORY", memory, "Memory (MB)", "Memory per job (sbatch --mem, MB)."],
              ["JOB_TIME", time, "Time limit", "Wall time (sbatch --time, e.g. 1:00:00 or 2-00:00:00)."]]
    if not gpu:
        # the CPU queue never asks for a GPU, whatever the protocol's GPU list says
        params.append(["GPU_COUNT", "0", "GPUs", "CPU queue: no GPU requested (--gres=gpu:0)."])
    return params


def slurm_template(engine_home: str) -> str:
    """The job script (before pyworkflow's %-formatting)."""
    bin_dir = os.path.join(os.path.abspath(engine_home), "bin")
    lines = [
        "#!/bin/bash",
        "#SBATCH --job-name=%_(JOB_NAME)s",
        "#SBATCH --partition=%_(JOB_QUEUE)s",
        "#SBATCH --ntasks=%_(JOB_NODES)d",
        "#SBATCH --cpus-per-task=%_(JOB_THREADS)d",
        "#SBATCH --mem=%_(JOB_MEMORY)s",
        "#SBATCH --time=%_(JOB_TIME)s",
        "#SBATCH --gres=gpu:%_(GPU_COUNT)s",
        "#SBATCH --export=ALL",
        "# SC-Net engine environment, by absolute path (not from the submitting shell)",
        f"export SCNET_ENGINE_HOME={_esc(shlex.quote(os.path.abspath(engine_home)))}",
        f"export PATH={_esc(shlex.quote(bin_dir))}:\"$PATH\"",
        "export OMP_NUM_THREADS=${SLURM_CPUS_PER_TASK:-1}",
        "echo \"[scnet job] $(hostname) job $SLURM_JOB_ID cpus ${SLURM_CPUS_PER_TASK:-?} "
        "gpus ${CUDA_VISIBLE_DEVICES:-none}\"",
        "%_(JOB_COMMAND)s",
    ]
    return "\n".join(lines)


def slurm_conf(engine_home: str, partition: str = "debug", memory: str = "4096",
               time: str = "1:00:00", queue_for_jobs: bool = False) -> str:
    """hosts.conf for Scipion's queue on Slurm (see the module docstring)."""
    queues = {partition: _queue_params(False, memory, time),
              partition + GPU_SUFFIX: _queue_params(True, memory, time)}
    # the GPU queue submits to the same partition: JOB_QUEUE is the queue's name, so
    # its entry points --partition back to the real one
    queues[partition + GPU_SUFFIX].insert(0, ["JOB_QUEUE", partition, "Partition",
                                               "Slurm partition of the GPU queue."])
    default = {"JOB_MEMORY": memory, "JOB_TIME": time, "GPU_COUNT": "0",
               "QUEUE_FOR_JOBS": "Y" if queue_for_jobs else "N"}
    logs = "%_(JOB_LOGS)s"
    submit = (f'sbatch --parsable -o "{logs}.out" -e "{logs}.err" "%_(JOB_SCRIPT)s"')
    return ("[localhost]\n"
            f"PARALLEL_COMMAND = {_PARALLEL}\n"
            "NAME = SLURM\n"
            "ADDRESS = localhost\n"
            "MANDATORY = False\n"
            "QUEUE_SYSTEM = SLURM\n"
            f"SUBMIT_COMMAND = {submit}\n"
            "CHECK_COMMAND = timeout 30 squeue -h -j %_(JOB_ID)s\n"
            "CANCEL_COMMAND = scancel %_(JOB_ID)s\n"
            f"QUEUES = {json.dumps(queues)}\n"
            f"QUEUES_DEFAULT = {json.dumps(default)}\n"
            + _template_entry(slurm_template(engine_home)))


def render(kind: str, **kw) -> str:
    if kind == LOCALHOST:
        return localhost_conf()
    if kind == SLURM:
        return slurm_conf(**kw)
    raise ValueError(f"hosts.conf kind must be one of {', '.join(KINDS)}, got {kind!r}")


def write(path: str, kind: str = LOCALHOST, **kw) -> str:
    """Write the hosts.conf ``kind`` to ``path`` (folders created); returns the path."""
    text = render(kind, **kw)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".partial"
    with open(tmp, "w") as fh:
        fh.write(text)
    os.replace(tmp, path)
    return path


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="Write a Scipion hosts.conf (local, or Scipion's queue on Slurm).")
    p.add_argument("kind", choices=KINDS)
    p.add_argument("-o", "--output", help="file to write (default: stdout)")
    p.add_argument("--engine-home", default=os.environ.get("SCNET_ENGINE_HOME", ""),
                   help="prefix of the SC-Net engine environment (holds bin/scnet) [$SCNET_ENGINE_HOME]")
    p.add_argument("--partition", default="debug", help="Slurm partition [debug]")
    p.add_argument("--memory", default="4096", help="default --mem in MB [4096]")
    p.add_argument("--time", default="1:00:00", help="default --time [1:00:00]")
    p.add_argument("--queue-for-jobs", action="store_true", help="default: one job per step (QUEUE_FOR_JOBS=Y)")
    a = p.parse_args(argv)
    kw = {}
    if a.kind == SLURM:
        if not a.engine_home:
            p.error("slurm: give --engine-home (or set SCNET_ENGINE_HOME)")
        kw = dict(engine_home=a.engine_home, partition=a.partition, memory=a.memory, time=a.time,
                  queue_for_jobs=a.queue_for_jobs)
    if a.output:
        write(a.output, a.kind, **kw)
    else:
        sys.stdout.write(render(a.kind, **kw))
    return 0


if __name__ == "__main__":
    sys.exit(main())

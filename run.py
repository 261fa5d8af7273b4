"""Train a model of the GAN family: `python run.py model=dcgan data=fashion_mnist trainer=gpu`.

Hydra composes conf/config.yaml with the chosen groups; see README.md for the options. `task=`
picks what to do with them (gans/tasks/): train (the default), translate, evaluate or generate.
"""

import logging
import sys
import warnings

import hydra
from hydra.errors import InstantiationException
from omegaconf import DictConfig
from omegaconf.errors import MissingMandatoryValue

from gans.config import register_resolvers
from gans.errors import GansError

register_resolvers()
log = logging.getLogger("run")
# Lightning 2.6 calls a torch pytree API that torch 2.14 deprecates, once per run: noise to users.
warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\).*")


def _drop_litlogger_tip(record: logging.LogRecord) -> bool:
    """A logging filter: False (drop the record) for Lightning's tip to install litlogger."""
    message = str(record.msg)
    return not ("Tip" in message and "litlogger" in message)


def route_lightning_logs_through_hydra() -> None:
    """One console line per log record, no advertisement.

    Hydra's job logging prints every record once (console) and files it (run.log). Importing
    `lightning` adds a console handler of its own to the `lightning` logger (and, when nothing has
    configured logging yet, to `lightning.pytorch` and `lightning.fabric`, which then stop
    propagating), so each Lightning line would show twice. Lightning's documented way to tune its
    console output is the standard `logging` configuration: drop those handlers, propagate to
    Hydra's, and filter the "litlogger" tip that Lightning >= 2.6.1 logs on every `Trainer`.
    """
    import lightning  # noqa: F401  (its import adds the handlers removed here)

    for name in ("lightning", "lightning.pytorch", "lightning.fabric"):
        logger = logging.getLogger(name)
        for handler in list(logger.handlers):
            logger.removeHandler(handler)
        logger.propagate = True
    logging.getLogger("lightning.pytorch.utilities.rank_zero").addFilter(_drop_litlogger_tip)


def first_user_error(err: BaseException) -> BaseException | None:
    """The GansError behind `err`, if any (Hydra wraps errors raised while instantiating)."""
    while err is not None:
        if isinstance(err, GansError):
            return err
        err = err.__cause__ or err.__context__
    return None


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg: DictConfig) -> float | None:
    from gans.tasks.evaluate import evaluate
    from gans.tasks.generate import generate
    from gans.tasks.train import train
    from gans.tasks.translate import translate
    from gans.tasks.upscale import upscale

    route_lightning_logs_through_hydra()
    tasks = {"train": train, "translate": translate, "evaluate": evaluate, "generate": generate, "upscale": upscale}
    if cfg.task not in tasks:
        log.error(f"task={cfg.task} is unknown: use one of {', '.join(tasks)}")
        sys.exit(1)
    try:
        return tasks[cfg.task](cfg)
    except (GansError, InstantiationException, MissingMandatoryValue) as err:
        cause = first_user_error(err)
        if isinstance(err, MissingMandatoryValue):
            message = f"{err.full_key} has no value: add {err.full_key}=... to the command line"
        else:
            message = str(cause) if cause is not None else str(err).splitlines()[0]
        # One line on the console and in the run's log file. Under DDP every process raises the
        # same collective error (e.g. a NaN on any process); the first process reports it.
        from lightning.pytorch.utilities import rank_zero_only

        (log.error if rank_zero_only.rank == 0 else log.debug)(message)
        sys.exit(1)


if __name__ == "__main__":
    main()

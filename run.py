"""Train a model of the GAN family: `python run.py model=dcgan data=fashion_mnist trainer=gpu`.

Hydra composes conf/config.yaml with the chosen groups; see README.md for the options.
"""

import logging
import sys

import hydra
from hydra.errors import InstantiationException
from omegaconf import DictConfig
from omegaconf.errors import MissingMandatoryValue

from gans.config import register_resolvers
from gans.errors import GansError

register_resolvers()
log = logging.getLogger("run")


def first_user_error(err: BaseException) -> BaseException | None:
    """The GansError behind `err`, if any (Hydra wraps errors raised while instantiating)."""
    while err is not None:
        if isinstance(err, GansError):
            return err
        err = err.__cause__ or err.__context__
    return None


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg: DictConfig) -> float | None:
    from gans.train import train
    from gans.translate import translate

    tasks = {"train": train, "translate": translate}
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
        log.error(message)  # one line on the console and in the run's log file
        sys.exit(1)


if __name__ == "__main__":
    main()

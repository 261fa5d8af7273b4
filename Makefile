# The two commands a user needs: `make run` and `make test`. Both set up .venv first.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# The tested torch pair; both lie on this workplace's local package mirror.
TORCH_SPEC ?= torch==2.14.1 torchvision==0.29.1
FASHION_MNIST_DEB_DIR := /usr/share/datasets/fashion-mnist
MATE_NATURE_DIR := /usr/share/backgrounds/mate/nature
CHROMIUM ?= /usr/bin/chromium

.PHONY: install run test clean fashion-mnist mate-backgrounds chromium

install: $(VENV)/.installed fashion-mnist mate-backgrounds chromium

$(VENV)/.installed: pyproject.toml
	@echo "[make install] creating $(VENV) and installing gans (editable, with the dev extra)"
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install -q --upgrade pip
	@$(PY) -m pip install -q $(TORCH_SPEC)
	@$(PY) -m pip install -q -e '.[dev]'
	@touch $@

# Offline path for the default data set: Debian's package ships the real 60k/10k Fashion-MNIST.
fashion-mnist:
	@if [ -d "$(FASHION_MNIST_DEB_DIR)" ] || [ -n "$$GANS_SKIP_APT" ]; then :; \
	elif command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
		echo "[make install] installing Debian package dataset-fashion-mnist (offline Fashion-MNIST)"; \
		(apt-get install -y -q dataset-fashion-mnist >/dev/null 2>&1 || \
		 (apt-get update -q >/dev/null 2>&1 && apt-get install -y -q dataset-fashion-mnist >/dev/null)) || \
		echo "[make install] could not install dataset-fashion-mnist; torchvision will download Fashion-MNIST when online"; \
	else echo "[make install] $(FASHION_MNIST_DEB_DIR) missing; torchvision will download Fashion-MNIST when online"; fi

# Offline photographs for super-resolution (SRResNet, SRGAN): the 12 nature photographs of Debian's
# mate-backgrounds (1280x1024 to 2560x1920, GPL-2+) train, scikit-image's bundled photographs test.
mate-backgrounds:
	@if [ -d "$(MATE_NATURE_DIR)" ] || [ -n "$$GANS_SKIP_APT" ]; then :; \
	elif command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
		echo "[make install] installing Debian package mate-backgrounds (offline photographs for super-resolution)"; \
		(apt-get install -y -q mate-backgrounds >/dev/null 2>&1 || \
		 (apt-get update -q >/dev/null 2>&1 && apt-get install -y -q mate-backgrounds >/dev/null)) || \
		echo "[make install] could not install mate-backgrounds; super-resolution trains on scikit-image's photographs"; \
	else echo "[make install] $(MATE_NATURE_DIR) missing; super-resolution trains on scikit-image's photographs"; fi

# The browser the demo's test drives (tests/tools/test_demo_browser.py, through Playwright): Debian's
# chromium, since the browsers Playwright downloads itself need the internet. Without it that test skips.
chromium:
	@if [ -x "$(CHROMIUM)" ] || [ -n "$$GANS_SKIP_APT" ]; then :; \
	elif command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
		echo "[make install] installing Debian package chromium (headless browser for the demo's test)"; \
		(apt-get install -y -q chromium >/dev/null 2>&1 || \
		 (apt-get update -q >/dev/null 2>&1 && apt-get install -y -q chromium >/dev/null)) || \
		echo "[make install] could not install chromium; the demo's browser test will skip"; \
	else echo "[make install] $(CHROMIUM) missing; the demo's browser test will skip"; fi

run: install
	$(PY) run.py $(ARGS)

# One test worker per core (pytest-xdist; work stealing, since a few CLI tests are long): most tests
# are CLI runs that wait on imports and one core.
PYTEST_ARGS ?= -n auto --maxprocesses 4 --dist worksteal --durations=25
test: install
	$(PY) -m pytest $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) outputs multirun .pytest_cache

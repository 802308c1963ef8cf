# Feature Portal. `make run` starts the quickstart; `make test` runs the suite on PostgreSQL + Redis.
.PHONY: run test install install-dev lint typecheck bench migrate worker beat lock fmt

run:            ## install, bootstrap the demo, serve web + worker + beat (Ctrl-C stops all)
	bin/run

test:           ## the full test suite (real PostgreSQL, Redis, Feast, Celery, Chromium)
	bin/test

install:        ## create .venv with the pinned runtime dependencies
	bin/install

install-dev:    ## runtime + test/lint dependencies
	bin/install --dev

lint:           ## ruff lint and format check
	bin/install --dev && .venv/bin/ruff check . && .venv/bin/ruff format --check .

fmt:            ## apply ruff formatting and safe fixes
	bin/install --dev && .venv/bin/ruff check --fix . && .venv/bin/ruff format .

typecheck:      ## mypy on portal/, catalog/ and jobs/
	bin/install --dev && .venv/bin/mypy portal catalog jobs

bench:          ## benchmarks; results in bench/results/
	bin/bench

migrate:        ## apply database migrations
	bin/install && .venv/bin/python manage.py migrate

worker:         ## a Celery worker (same command as the k8s Deployment)
	.venv/bin/celery -A portal worker --loglevel INFO

beat:           ## Celery beat (exactly one per deployment)
	.venv/bin/celery -A portal beat --loglevel INFO

lock:           ## re-pin requirements/*.txt from pyproject.toml
	.venv/bin/uv pip compile --python .venv/bin/python pyproject.toml -o requirements/lock.txt && \
	.venv/bin/uv pip compile --python .venv/bin/python pyproject.toml --extra dev -o requirements/dev-lock.txt

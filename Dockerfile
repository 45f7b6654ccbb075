# The project's image: every Airflow component of docker-compose.yaml, the sandbox emulators and the
# SMTP catcher run from it. tests/test_compose.py checks its install lines against the pins and its
# Airflow settings against scripts/airflow_env.sh.
#
# FROM plain Python rather than apache/airflow:3.3.2-python3.11: that image's packages come from
# Airflow's published constraint file, not from our constraints.txt, and it carries providers and
# tools the product does not use. Installing our pins over it would give a mix nobody tested; from
# plain Python the image holds exactly the tree the tests run against. Debian 12 (bookworm) like the
# machines that tree was resolved on; its packages with C code come as manylinux wheels (no compiler).
FROM python:3.11-slim-bookworm

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore

# Like Airflow's images: uid 50000 in group 0 (platforms that run images under an arbitrary uid put
# it in group 0). The folders named volumes are mounted on belong to it, and a new volume takes the
# owner of its mount point, so the services write there without running as root.
RUN useradd --uid 50000 --gid 0 --home-dir /opt/airflow --no-create-home --shell /bin/bash airflow \
    && mkdir -p /opt/airflow/logs /opt/airflow/provisioning /opt/airflow/shared \
    && chown -R airflow:0 /opt/airflow \
    && chmod -R g+rwX /opt/airflow
WORKDIR /opt/airflow

# The pinned tree first, so a change of code rebuilds only the layers below. The same install line
# as scripts/setup.sh without the test tools (requirements-dev.txt).
COPY requirements.txt constraints.txt ./
RUN pip install -r requirements.txt -c constraints.txt

# The project's provider package (connection types msgraph and provisioning_state); no dependencies.
COPY providers/entra-provisioning providers/entra-provisioning
RUN pip install --no-deps ./providers/entra-provisioning

# What the product runs: the DAG, the Airflow glue, the engine with its mapping table, expectation
# suite and templates, the sandbox, and the scripts (SMTP catcher, compose set-up, mail viewer).
COPY dags dags
COPY plugins plugins
COPY include include
COPY scripts scripts
# Byte-compiled here, once: PYTHONDONTWRITEBYTECODE keeps the containers from writing __pycache__,
# so every process (each provision-user, each Airflow task) would otherwise compile the product's
# modules from source again (~70 for provision-user: 4 % of its CPU time, measured).
RUN python -m compileall -q dags plugins include scripts

# The project's Airflow configuration: what scripts/airflow_env.sh exports for every Airflow command
# run on a development machine, with the repository at /opt/airflow (Astro's layout: AIRFLOW_HOME
# holds dags/, plugins/ and include/). docker-compose.yaml adds the deployment's own settings.
ENV AIRFLOW_HOME=/opt/airflow \
    AIRFLOW__CORE__DAGS_FOLDER=/opt/airflow/dags \
    AIRFLOW__CORE__PLUGINS_FOLDER=/opt/airflow/plugins \
    AIRFLOW__CORE__LOAD_EXAMPLES=False \
    AIRFLOW__CORE__EXECUTOR=LocalExecutor \
    AIRFLOW__CORE__PARALLELISM=4 \
    AIRFLOW__CORE__TEST_CONNECTION=Enabled \
    AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION=False \
    AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL=1 \
    AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME=0.2 \
    AIRFLOW__SCHEDULER__MIN_FILE_PROCESS_INTERVAL=5 \
    AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL=5 \
    PYTHONPATH=/opt/airflow:/opt/airflow/plugins

USER airflow
CMD ["airflow", "version"]

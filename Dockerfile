# CPU image of kiwi_cas; installs exactly as scripts/setup.sh does.
FROM python:3.11-slim-bookworm
RUN apt-get update -q && apt-get install -y -q --no-install-recommends libuima-core-java default-jdk-headless \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /opt/kiwi_cas
COPY . .
RUN rm -rf .venv && TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu scripts/setup.sh
ENV PATH="/opt/kiwi_cas/.venv/bin:${PATH}" HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
ENTRYPOINT ["kiwi-cas"]
CMD ["--help"]

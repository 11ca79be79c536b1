# A node image: the same Debian packages as the README's install (./dev), then `callcenter serve`.
FROM python:3.11-slim-bookworm

RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends espeak-ng sox libsox-fmt-mp3 \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY pyproject.toml README.md ./
COPY callcenter callcenter
COPY sip_bridge sip_bridge
COPY ivr ivr
COPY acd acd
COPY asr asr
COPY recordings recordings
COPY softphone_web softphone_web
RUN pip install --no-cache-dir .

ENV CALLCENTER_DATA_DIR=/data \
    CALLCENTER_HTTP_HOST=0.0.0.0
VOLUME /data
# SIP (UDP and TCP), HTTP API, RTP range
EXPOSE 5060/udp 5060/tcp 8000/tcp 20000-39999/udp
CMD ["callcenter", "serve"]

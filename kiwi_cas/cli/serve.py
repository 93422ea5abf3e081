"""``kiwi-cas pbj``: the Python side of a cTAKES PBJ pipeline, over STOMP."""

from __future__ import annotations

import os
from pathlib import Path

import click

from kiwi_cas.cli.options import annotation_options, extractor_options, make_annotator_config, typesystem_option
from kiwi_cas.errors import UsageError


@click.command()
@click.option("--host", default="localhost", show_default=True)
@click.option("--port", type=click.IntRange(1, 65535), default=61616, show_default=True,
              help="STOMP port of the broker (ActiveMQ default 61616).")
@click.option("--user", envvar="KIWI_PBJ_USER", default=None,
              help="Broker login (or $KIWI_PBJ_USER). Without user and password: RabbitMQ's guest/guest, with a "
                   "warning (guest works on loopback only).")
@click.option("--password-file", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="File holding the broker password (first line). Or set $KIWI_PBJ_PASSWORD. Never on the "
                   "command line, where `ps` shows it to every user.")
@click.option("--tls", is_flag=True, help="Connect with TLS (STOMP over SSL, e.g. port 61614).")
@click.option("--tls-ca", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="CA bundle to verify the broker's certificate. Default: the system's.")
@click.option("--tls-cert", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Client certificate, for brokers that ask for one (with --tls-key).")
@click.option("--tls-key", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None)
@click.option("--reconnect-tries", type=click.IntRange(1, 1000), default=10, show_default=True,
              help="Consecutive failed connects (backoff 0.5 s doubling to 30 s) before giving up with exit 4.")
@click.option("--receive-queue", default="JavaToPy", show_default=True, help="Queue cTAKES sends CASes to.")
@click.option("--send-queue", default="PyToJava", show_default=True, help="Queue annotated CASes go back on.")
@click.option("--error-queue", default="KiwiPbjErrors", show_default=True,
              help="Queue for JSON reports of skipped (bad) messages; never holds note text.")
@typesystem_option("Typesystem of the incoming XMI (repeatable). Default: the bundled cTAKES typesystem.")
@click.option("--lenient", is_flag=True, help="Drop structures of types missing from the typesystem instead of "
              "reporting the message as failed.")
@extractor_options
@annotation_options
def pbj(host, port, user, password_file, tls, tls_ca, tls_cert, tls_key, reconnect_tries, receive_queue, send_queue, error_queue, typesystems, lenient, extractor, model,
        runtime, precision, backend, constrained, task, ctakes, entities_from, ctakes_assertions, require_mentions, view,
        sentence_type, write_sentences) -> None:
    """Serve a cTAKES PBJ pipeline over STOMP: receive XMI, annotate, send back, in order.

    Stops on cTAKES's stop message (which it forwards), SIGINT or SIGTERM.

    \b
    Example (cTAKES piper file runs the Java side):
      kiwi-cas pbj --port 61616 --ctakes --task re --entities-from ctakes
    """
    import logging

    from kiwi_cas.annotate.annotator import KiwiAnnotator
    from kiwi_cas.serve.pbj import DEFAULT_TYPESYSTEM, PbjConfig, serve

    config = make_annotator_config(extractor, model, runtime, precision, backend, constrained, task, ctakes, entities_from,
                                   ctakes_assertions, require_mentions, view, sentence_type, write_sentences)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    password = os.environ.get("KIWI_PBJ_PASSWORD")
    if password_file is not None:
        password = password_file.read_text(encoding="utf-8").splitlines()[0] if password_file.stat().st_size else ""
    if user is None and password is None:
        logging.getLogger("kiwi_cas.pbj").warning("no broker credentials given: using guest/guest")
        user, password = "guest", "guest"
    elif user is None or password is None:
        raise UsageError("give both a broker user (--user or $KIWI_PBJ_USER) and a password (--password-file or "
                         "$KIWI_PBJ_PASSWORD)")
    if (tls_ca or tls_cert or tls_key) and not tls:
        raise UsageError("--tls-ca, --tls-cert and --tls-key need --tls")
    pbj_config = PbjConfig(host=host, port=port, user=user, password=password, receive_queue=receive_queue,
                           send_queue=send_queue, error_queue=error_queue, lenient=lenient,
                           typesystems=tuple(Path(p) for p in typesystems) or (DEFAULT_TYPESYSTEM,),
                           reconnect_tries=reconnect_tries, tls=tls, tls_ca=tls_ca, tls_cert=tls_cert,
                           tls_key=tls_key)
    stats = serve(KiwiAnnotator(config), pbj_config)
    click.echo(f"pbj: {stats.processed} annotated, {stats.failed} skipped, {stats.reconnects} reconnects"
               + (" (stop message received)" if stats.stopped_by_message else ""), err=True)




@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to bind. Anything but loopback exposes notes to the network: use a token and TLS "
                   "in front (a reverse proxy).")
@click.option("--port", type=click.IntRange(1, 65535), default=5000, show_default=True)
@click.option("--token-file", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="File holding the bearer token clients must send (or set $KIWI_SERVE_TOKEN). No default token.")
@click.option("--max-body-bytes", type=click.IntRange(1024), default=10 * 1024 * 1024, show_default=True,
              help="Larger requests get 413.")
@click.option("--queue-size", type=click.IntRange(1), default=256, show_default=True,
              help="Documents waiting for the model; beyond it requests get 503 at once.")
@click.option("--batch-window-ms", type=click.FloatRange(0, 1000), default=10.0, show_default=True,
              help="How long a document waits for others to share its extractor call.")
@click.option("--entity-output-mode", type=click.Choice(["dict", "list"]), default="dict", show_default=True,
              help="MedCATservice's ANNOTATIONS_ENTITY_OUTPUT_MODE: annotations keyed by id, or a list.")
@typesystem_option("Typesystem of XMI posted to /api/xmi (repeatable). Default: the bundled cTAKES typesystem.")
@extractor_options
@annotation_options
def http_serve(host, port, token_file, max_body_bytes, queue_size, batch_window_ms, entity_output_mode, typesystems,
               extractor, model, runtime, precision, backend, constrained, task, ctakes, entities_from,
               ctakes_assertions, require_mentions, view, sentence_type, write_sentences) -> None:
    """Serve the annotator over HTTP, with MedCATservice's routes and shapes.

    \b
    POST /api/process       {"content": {"text": "..."}}      -> MedCAT entities with meta_anns
    POST /api/process_bulk  {"content": [{"text": "..."}, ...]}
    POST /api/xmi           an XMI CAS -> the annotated XMI (?task=re&ctakes=true&entities-from=ctakes)
    GET  /api/info, /api/health, /api/typesystem

    \b
    Example:
      KIWI_SERVE_TOKEN=$(cat secret) kiwi-cas serve --port 5000
      curl -s -H "Authorization: Bearer $(cat secret)" -H 'Content-Type: application/json' \\
           -d '{"content": {"text": "Denies chest pain."}}' localhost:5000/api/process
    """
    try:
        import uvicorn

        from kiwi_cas.serve.http import ServiceConfig, create_app
    except ModuleNotFoundError:
        from kiwi_cas.errors import SetupError

        raise SetupError("the HTTP service needs Starlette and uvicorn: pip install 'kiwi_cas[serve]'",
                         "missing_serve") from None
    from kiwi_cas.annotate.job import ReadOptions
    from kiwi_cas.serve.pbj import DEFAULT_TYPESYSTEM

    config = make_annotator_config(extractor, model, runtime, precision, backend, constrained, task, ctakes, entities_from,
                                   ctakes_assertions, require_mentions, view, sentence_type, write_sentences)
    token = os.environ.get("KIWI_SERVE_TOKEN")
    if token_file is not None:
        token = token_file.read_text(encoding="utf-8").splitlines()[0].strip() if token_file.stat().st_size else ""
    if token is not None and len(token) < 16:
        raise UsageError("the bearer token must be at least 16 characters")
    if token is None and host not in ("127.0.0.1", "localhost", "::1"):
        click.echo(f"warning: serving on {host} without a bearer token", err=True)
    read = ReadOptions(typesystems=tuple(typesystems) or (DEFAULT_TYPESYSTEM,))
    service = ServiceConfig(annotator=config, read=read, token=token, max_body_bytes=max_body_bytes,
                            queue_size=queue_size, batch_window_ms=batch_window_ms,
                            entity_output_mode=entity_output_mode)
    # uvicorn's access log has method, path and status only (never bodies); it finishes in-flight
    # requests on SIGTERM/SIGINT before the model is released
    uvicorn.run(create_app(service), host=host, port=port, log_level="warning", access_log=True,
                timeout_graceful_shutdown=30)


COMMANDS = [pbj, http_serve]

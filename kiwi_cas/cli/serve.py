"""``kiwi-cas pbj``: the Python side of a cTAKES PBJ pipeline, over STOMP."""

from __future__ import annotations

from pathlib import Path

import click

from kiwi_cas.cli.options import annotation_options, extractor_options, make_annotator_config, typesystem_option


@click.command()
@click.option("--host", default="localhost", show_default=True)
@click.option("--port", type=click.IntRange(1, 65535), default=61616, show_default=True,
              help="STOMP port of the broker (ActiveMQ default 61616).")
@click.option("--user", default="guest", show_default=True)
@click.option("--password", default="guest", show_default=True)
@click.option("--receive-queue", default="JavaToPy", show_default=True, help="Queue cTAKES sends CASes to.")
@click.option("--send-queue", default="PyToJava", show_default=True, help="Queue annotated CASes go back on.")
@click.option("--error-queue", default="KiwiPbjErrors", show_default=True,
              help="Queue for JSON reports of skipped (bad) messages; never holds note text.")
@typesystem_option("Typesystem of the incoming XMI (repeatable). Default: the bundled cTAKES typesystem.")
@click.option("--lenient", is_flag=True, help="Drop structures of types missing from the typesystem instead of "
              "reporting the message as failed.")
@extractor_options
@annotation_options
def pbj(host, port, user, password, receive_queue, send_queue, error_queue, typesystems, lenient, extractor, model,
        precision, backend, constrained, task, ctakes, entities_from, ctakes_assertions, require_mentions, view,
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

    config = make_annotator_config(extractor, model, precision, backend, constrained, task, ctakes, entities_from,
                                   ctakes_assertions, require_mentions, view, sentence_type, write_sentences)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    pbj_config = PbjConfig(host=host, port=port, user=user, password=password, receive_queue=receive_queue,
                           send_queue=send_queue, error_queue=error_queue, lenient=lenient,
                           typesystems=tuple(Path(p) for p in typesystems) or (DEFAULT_TYPESYSTEM,))
    stats = serve(KiwiAnnotator(config), pbj_config)
    click.echo(f"pbj: {stats.processed} annotated, {stats.failed} skipped"
               + (" (stop message received)" if stats.stopped_by_message else ""), err=True)


COMMANDS = [pbj]

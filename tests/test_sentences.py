from kiwi_cas.core.splitter import split_sentences


def sents(text):
    return [text[s:e] for s, e in split_sentences(text)]


def test_section_header_is_its_own_sentence():
    assert sents("PHYSICAL EXAMINATION: Lungs clear. Heart regular.") == [
        "PHYSICAL EXAMINATION:", "Lungs clear.", "Heart regular."]


def test_abbreviations_and_decimals_do_not_split():
    assert sents("Seen by Dr. Smith today. Give 0.35 mg p.o. b.i.d. for pain.") == [
        "Seen by Dr. Smith today.", "Give 0.35 mg p.o. b.i.d. for pain."]


def test_numbered_lists_split_per_item_and_keep_the_number():
    assert sents("DIAGNOSES:\n1. Sepsis.\n2. Pneumonia. 3. Anemia.") == [
        "DIAGNOSES:", "1. Sepsis.", "2. Pneumonia.", "3. Anemia."]


def test_line_breaks_end_sentences_but_wrapped_prose_continues():
    assert sents("Chest pain\nNo fever\nhe was seen\nyesterday and is well.") == [
        "Chest pain", "No fever\nhe was seen\nyesterday and is well."]


def test_offsets_are_code_points_and_trimmed():
    text = "  Pain 😀 in knee.  Better now. "
    spans = split_sentences(text)
    assert [text[s:e] for s, e in spans] == ["Pain 😀 in knee.", "Better now."]

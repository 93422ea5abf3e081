"""One list of tagged outputs, admitted or not, that both constrained decoders are held to:
the transformers backend's automaton (tests/test_llama_align.py) and the grammar vLLM runs
with, checked by xgrammar (tests/test_vllm_cpu.py). The source is ' No "fever".'."""

SOURCE = ' No "fever".'

GRAMMAR_CASES = [  # (output, admitted) for the source ' No "fever".' with problem and negation tags
    (' No "fever".', True),
    ('No "fever".', True),  # the leading space is optional
    (' <span class="negation">No</span> <span class="problem">"fever"</span>.', True),
    (' No</span> "fever".', False),  # a closing tag with no span open
    (' <span class="problem">No "fever".', False),  # a span never closed
    (' <span class="problem"><span class="problem">No</span></span> "fever".', False),  # nested
    (' No "fevers".', False),  # a changed word
    (' <span class="foo">No</span> "fever".', False),  # a class not offered
    (' No "<span class="problem">fe</span>ver".', False),  # a tag inside a word
    (' No <span class="problem"></span>"fever".', False),  # an empty span
    ('<span class="negation"> No</span> "fever".', False),  # a tag before the prompt's leading space
    ('<span class="negation">No</span> "fever".', True),  # ... after it, the space left out
    (' No<span class="problem"> "fever"</span>.', True),  # a span may begin with a space part
]


JOINT_CASES = [  # the joint format: problem tags may carry negation attributes, test tags none
    (' No <span class="problem" negation="No">"fever"</span>.', True),
    (' No <span class="problem">"fever"</span>.', True),
    (' No <span class="test" negation="No">"fever"</span>.', False),  # not a test's modifier here
    (' No <span class="problem" bodyloc="No">"fever"</span>.', False),  # not offered
    (' No <span class="problem" negation="N"o">"fever"</span>.', False),  # a quote inside a value
    (' No <span class="problem"' + ' negation="No"' * 8 + '>"fever"</span>.', True),
    (' No <span class="problem"' + ' negation="No"' * 9 + '>"fever"</span>.', False),  # more than 8
]


FORCED_CASES = [  # the joint format with the entity "fever" (source offsets 4-11 with its quotes) given
    (' No <span class="problem" negation="No">"fever"</span>.', True),
    ('No <span class="problem">"fever"</span>.', True),
    (' No "fever".', False),  # the given entity untagged
    (' No <span class="test">"fever"</span>.', False),  # another label
    (' <span class="problem">No</span> <span class="problem">"fever"</span>.', False),  # an extra tag
]


#: (test id, labels, attributes, forced spans, cases): each list with the grammar settings it is about
SETTINGS = [
    ("kiwi", ("problem", "negation"), None, None, GRAMMAR_CASES),
    ("joint", ("problem", "test"), {"problem": ("negation",)}, None, JOINT_CASES),
    ("joint-given-entities", ("problem", "test"), {"problem": ("negation",)}, ((4, 11, "problem"),), FORCED_CASES),
]

"""kiwi_cas: Kiwi-style clinical information extraction for Apache UIMA XMI CAS files.

The data path is: read CAS -> find sentences -> extract -> write annotations -> save.
"""

__version__ = "0.1.0"

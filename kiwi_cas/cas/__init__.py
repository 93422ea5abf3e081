"""Everything that touches UIMA CAS objects (dkpro-cassis). Nothing here imports torch."""

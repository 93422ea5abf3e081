from kiwi_cas.cli import main

main()

import sys

from .cli import main

if __name__ == "__main__":  # importing byzcore.__main__ (as Sphinx does) must not run the CLI
    sys.exit(main())

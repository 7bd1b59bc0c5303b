import sys

from recognizer.cli import main
from recognizer.native_logs import silence_tensorflow

if "--verbose" not in sys.argv[1:]:
    silence_tensorflow()
raise SystemExit(main())

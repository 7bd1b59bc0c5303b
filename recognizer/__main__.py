from recognizer.cli import main

raise SystemExit(main())

from tacops.cli import main

raise SystemExit(main())

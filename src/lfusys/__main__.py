from lfusys.cli import main

raise SystemExit(main())

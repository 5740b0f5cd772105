from trajrec.cli import main

raise SystemExit(main())

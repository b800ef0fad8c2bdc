from sparkls.server.cli import main; raise SystemExit(main())

from trajrec.cli import console_main

console_main()

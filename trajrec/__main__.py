from trajrec._launch import console_main

console_main()

from mysqlsts.cli import main

main()

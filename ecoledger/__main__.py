from ecoledger.cli import main

main()

from docklab.cli import main

main()

from ._serve import main

main()

from edge_snn.cli import main

main()

"""Reports: rent roll and aging."""

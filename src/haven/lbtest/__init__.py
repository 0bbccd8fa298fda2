"""`haven lb-test`: black-box checks of a running deployment."""

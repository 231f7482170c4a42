"""What a file is, from its bytes: its type (`sniff`) and, for images, size and thumbnail (`images`)."""

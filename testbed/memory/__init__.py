"""Memories computed without training: the closed-form linear associative memories of Cabannes et al. and their
scaling-law figures (associative, law), and the retrieval capacity of each memory mechanism (capacity)."""

"""The results wing: what runs produced, turned into numbers, tables, pictures and pages.

    intervals    95 % intervals over seeds and held-out classes (a crossed random-effects t), paired differences
    aggregate    outcomes into rows over seeds: every metric and stratum with its interval and its counts
    collect      run directories into the results tables (results.csv, results.seeds.csv, results.paired.csv)
    io           results tables written atomically and read back checked
    tables       the numbers each view and figure needs from a results table (no drawing)
    plots        matplotlib drawing of the depth views; plots_memory of the memory views
    pages        the results pages, rendered from published data and hand-written notes
"""

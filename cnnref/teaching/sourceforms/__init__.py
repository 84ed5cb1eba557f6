"""The sources' equations implemented exactly as printed, for checking them against cnnref.

One module per topic. Each function names the ledger entry it implements
(``S000-E07`` etc.) and follows the source's own index convention, including
its mistakes where the source has one, so that the book can show the
discrepancy with a cell. Correct forms live in the main ``cnnref`` modules.
"""

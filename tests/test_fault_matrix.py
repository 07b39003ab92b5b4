from qdgs.faults import FAULTS, fault_matrix


def test_every_fault_fails_cleanly_as_promised(data_root):
    table = fault_matrix()
    assert len(table) == len(FAULTS) >= 15
    failed = table[~table.held]
    assert failed.empty, "\n" + failed.to_string()

"""`warmstart encode` on the default MiniLM checkpoint."""
from warmstart.cli import main


def test_encode_prints_similarity_matrix(capsys, minilm_dir):
    main(["encode", "A man is playing a guitar.", "Someone plays an instrument.", "Shares fell sharply today."])
    out = capsys.readouterr().out.splitlines()
    rows = [line.split()[-3:] for line in out if line.strip()[:1].isdigit() and "." in line]
    sims = [[float(v) for v in r] for r in rows]
    assert len(sims) == 3 and all(abs(sims[i][i] - 1) < 1e-3 for i in range(3))
    assert sims[0][1] > sims[0][2] + 0.3  # paraphrases are closer than unrelated sentences

"""Phone simulator and boot-storm load generator (SPEC §2, §11).

``plan`` is the pure boot sequence (what a Polycom phone asks for, stage by
stage, given the answers it gets); ``transport`` and ``filetransfer`` are the
HTTP(S)/FTP/TFTP clients; ``runner`` drives one boot; ``storm`` drives many.
"""

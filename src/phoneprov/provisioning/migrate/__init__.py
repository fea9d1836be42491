"""Migrating an existing boot server: an IIS, vsftpd or tftpd Polycom boot directory
turned into inventory, SIP lines, groups, template layers and the firmware catalog.

``import_bootdir`` (service.py) is the one call; ``report.py`` holds what it
returns. The modules follow the import's steps: ``scan`` reads the directory
and its master files, ``phones`` and ``plan`` work out what each phone ran with
and where it goes, ``layers`` writes template layers, ``images`` the firmware,
``files`` what is kept as it is.
"""

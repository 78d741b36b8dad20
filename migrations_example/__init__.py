"""The example shop's migrations, shipped inside the package as `zdmigrate._examples`.

zdmigrate skips files whose names start with an underscore, so this file is not a
migration; it only makes the directory installable, so `zdmigrate demo` runs from
an installed wheel too.
"""

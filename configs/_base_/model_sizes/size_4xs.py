# Model size "4xs" (ebt-method.md section 7) for any image backbone built on arch=.
model = dict(backbone=dict(arch='4xs'))

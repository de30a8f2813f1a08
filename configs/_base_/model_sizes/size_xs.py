# Model size "xs" (ebt-method.md section 7) for any image backbone built on arch=.
model = dict(backbone=dict(arch='xs'))

"""The demos are command lines over the public API: from ebtvision they import only
``ebtvision.apis`` (and its submodules) and the command-line / registry setup of
``ebtvision.utils``."""
import ast
import glob
import os.path as osp

import pytest

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DEMOS = sorted(glob.glob(osp.join(ROOT, 'demo', '*.py')))
#: The package the demos may import from, whole.
ALLOWED_PACKAGE = 'ebtvision.apis'
#: What the demos may import from ebtvision.utils: the registry setup and the
#: command-line helpers (with the import of optional packages, named by their extra).
ALLOWED_UTILS = {'register_all_modules', 'ArgumentParser', 'exit_with_error',
                 'exit_on_missing_extra', 'require'}


def ebtvision_imports(path):
    """``(line, module, names)`` of every import of ebtvision in the file, top-level or
    inside functions; ``names`` is None for ``import module``."""
    with open(path, encoding='utf-8') as file:
        tree = ast.parse(file.read(), filename=path)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name, None) for alias in node.names
                      if alias.name.split('.')[0] == 'ebtvision']
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module and \
                node.module.split('.')[0] == 'ebtvision':
            found.append((node.lineno, node.module, [alias.name for alias in node.names]))
    return found


def allowed(module, names) -> bool:
    if module == ALLOWED_PACKAGE or module.startswith(ALLOWED_PACKAGE + '.'):
        return True
    if module == 'ebtvision':  # from ebtvision import apis
        return names is not None and set(names) <= {'apis'}
    if module == 'ebtvision.utils':
        return names is not None and set(names) <= ALLOWED_UTILS
    return False


def test_there_are_demos():
    names = {osp.basename(path) for path in DEMOS}
    assert {'denoise_image.py', 'gradio_denoise.py', 'predict_video.py',
            'generate_text.py'} <= names


@pytest.mark.parametrize('path', DEMOS, ids=osp.basename)
def test_demo_imports_only_the_api(path):
    imports = ebtvision_imports(path)
    assert any(module.startswith(ALLOWED_PACKAGE) for _, module, _ in imports), \
        'the demo does not use ebtvision.apis'
    wrong = [f'line {line}: {module} {names or ""}' for line, module, names in imports
             if not allowed(module, names)]
    assert not wrong, (f'{osp.basename(path)} imports from ebtvision beyond '
                       f'{ALLOWED_PACKAGE} and ebtvision.utils ({sorted(ALLOWED_UTILS)}): '
                       + '; '.join(wrong))


def test_the_check_sees_forbidden_imports(tmp_path):
    demo = tmp_path / 'demo.py'
    demo.write_text('import sys\nfrom ebtvision.apis import TextGenerator\n'
                    'def main():\n    from ebtvision.models import EBTNextFrame\n'
                    '    import ebtvision.registry\n'
                    '    from ebtvision.utils import read_config\n')
    verdicts = [(module, allowed(module, names)) for _, module, names in
                ebtvision_imports(str(demo))]
    assert sorted(verdicts) == [('ebtvision.apis', True), ('ebtvision.models', False),
                                ('ebtvision.registry', False), ('ebtvision.utils', False)]

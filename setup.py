"""Build script for signattn_driver (ament_python; also `pip install .`)."""

from distutils.command.install_data import install_data  # setuptools' copy (its shim)
from glob import glob
import os

from setuptools import find_packages, setup

package_name = 'signattn_driver'
# Executables that launch_ros starts (`Node(package=..., executable=...)`): it looks for them in
# <prefix>/lib/<package>/ only.
LIBEXEC_SCRIPTS = ('drive_node', 'signattn', 'viewer_node')


def tree(source_dir):
    """Return data_files entries that mirror `source_dir` under share/<package>."""
    entries = []
    for root, _, files in os.walk(source_dir):
        if files:
            entries.append((os.path.join('share', package_name, root),
                            [os.path.join(root, name) for name in files]))
    return entries


class InstallDataWithLibexec(install_data):
    """Also put forwarders to the console scripts under <prefix>/lib/<package>/ when needed.

    colcon (`setup.py install` / `develop` with setup.cfg) already writes the console scripts
    to lib/<package>/. pip builds a wheel instead, which ignores setup.cfg's install_scripts and
    puts them in <prefix>/bin; then lib/<package>/<name> becomes a two-line shell script that
    execs <prefix>/bin/<name> (same interpreter, same signals: `exec` leaves no shell behind).
    """

    def finalize_options(self):
        """Add the forwarders to data_files unless the scripts already go to lib/<package>."""
        super().finalize_options()
        scripts_dir = os.path.normpath(self.get_finalized_command('install').install_scripts)
        if scripts_dir.split(os.sep)[-2:] == ['lib', package_name]:
            return
        build_dir = os.path.join(self.get_finalized_command('build').build_base, 'libexec')
        os.makedirs(build_dir, exist_ok=True)
        forwarders = []
        for name in LIBEXEC_SCRIPTS:
            path = os.path.join(build_dir, name)
            with open(path, 'w') as f:
                f.write('#!/bin/sh\n# pip layout: the console script is <prefix>/bin/'
                        f'{name} (setup.py, InstallDataWithLibexec)\n'
                        f'exec "$(dirname -- "$0")/../../bin/{name}" "$@"\n')
            os.chmod(path, 0o755)
            forwarders.append(path)
        self.data_files = [*self.data_files, (os.path.join('lib', package_name), forwarders)]


setup(
    name=package_name,
    version='0.1.0',
    packages=find_packages(include=['signattn_driver', 'signattn_driver.*']),  # not benchmarks
    package_data={'signattn_driver.viewer': ['static/*']},   # the viewer's page, script, style
    data_files=[
        ('share/ament_index/resource_index/packages', ['resource/' + package_name]),
        ('share/' + package_name, ['package.xml']),
        ('share/' + package_name + '/launch', glob('launch/*.launch.py')),
        *tree('config'),
    ],
    install_requires=['setuptools'],
    zip_safe=True,
    maintainer='signattn_driver maintainers',
    maintainer_email='maintainers@signattn-driver.invalid',
    description='Steering with quantized sign-only attention (Tashiro and Awano 2023).',
    license='Apache-2.0',
    extras_require={
        'test': ['pytest'],
        # MetaDrive itself: `pip install --no-deps metadrive-simulator==0.2.6.0` (its declared
        # pins conflict with these; see requirements-sim.txt and docs/simulation.md).
        'sim': ['gym==0.23.1', 'panda3d==1.10.13', 'panda3d-gltf==0.13',
                'panda3d-simplepbr==0.10', 'pygame==2.6.1', 'seaborn==0.13.2', 'pandas==3.1.1'],
    },
    cmdclass={'install_data': InstallDataWithLibexec},
    entry_points={
        'console_scripts': [
            'drive_node = signattn_driver.ros.drive_node:main',
            'signattn = signattn_driver.cli:main',
            'viewer_node = signattn_driver.ros.viewer_node:main',
        ],
    },
)

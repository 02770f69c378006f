"""Build script for signattn_driver (ament_python; also `pip install .`)."""

from glob import glob
import os

from setuptools import find_packages, setup

package_name = 'signattn_driver'


def tree(source_dir):
    """Return data_files entries that mirror `source_dir` under share/<package>."""
    entries = []
    for root, _, files in os.walk(source_dir):
        if files:
            entries.append((os.path.join('share', package_name, root),
                            [os.path.join(root, name) for name in files]))
    return entries


setup(
    name=package_name,
    version='0.1.0',
    packages=find_packages(exclude=['test', 'test.*']),
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
    entry_points={
        'console_scripts': [
            'drive_node = signattn_driver.ros.drive_node:main',
            'signattn = signattn_driver.cli:main',
        ],
    },
)
